*** Comments ***
Runs the self-test and streaming UART images of firmware/boards.mk on Renode's model of the board
(firmware/renode/netduinoplus2.repl) and waits for their console lines. Build the images first:
    make -C firmware uart-selftest BOARD=netduinoplus2 MODEL=m.tflite VECTORS=v.sktv
    make -C firmware uart-stream BOARD=netduinoplus2 MODEL=m.tflite AUDIO=a.wav OUT=firmware/build/netduinoplus2/uart-stream
then: renode-test firmware/renode/netduinoplus2.robot
Not run in CI: Renode is not obtainable here (CI runs the same images on QEMU, tests/test_boards.py).

*** Variables ***
${SELFTEST_ELF}    @${CURDIR}/../build/netduinoplus2/uart/kws_selftest.elf
${STREAM_ELF}      @${CURDIR}/../build/netduinoplus2/uart-stream/kws_stream.elf

*** Keywords ***
Create Board
    [Arguments]    ${elf}
    Execute Command    mach create
    Execute Command    machine LoadPlatformDescription @${CURDIR}/netduinoplus2.repl
    Execute Command    sysbus LoadELF ${elf}
    Execute Command    sysbus.cpu VectorTableOffset 0x08000000
    Create Terminal Tester    sysbus.usart1    timeout=120

*** Test Cases ***
Self Test Should Pass
    Create Board    ${SELFTEST_ELF}
    Start Emulation
    Wait For Line On Uart    SELFTEST board=netduinoplus2 .*    treatAsRegex=true
    Wait For Line On Uart    PASS \\d+/\\d+    treatAsRegex=true
    Wait For Line On Uart    EXIT 0

Stream Should Finish
    Create Board    ${STREAM_ELF}
    Start Emulation
    Wait For Line On Uart    STREAM status=0 .*    treatAsRegex=true
    Wait For Line On Uart    EXIT 0
